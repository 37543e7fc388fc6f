"""logpulse-agent: enrols with LogPulse, applies its group's Vector config, supervises Vector."""

__version__ = "0.1.0"
