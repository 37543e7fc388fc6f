"""The reference control-plane server (SPEC §7), installed with the ``server`` extra.

Where to look:

- ``app.py`` — :func:`~logpulse_agent.server.app.create_app`, the Starlette application;
  ``cli.py`` — ``logpulse-server serve`` and the admin commands (``cli_config.py``,
  ``cli_fleet.py``, over ``admin_client.py``).
- ``agent_routes.py`` — the agent protocol (enrol, config, heartbeat); ``admin_routes.py`` and
  ``admin_fleet_routes.py`` — the admin API; ``admin_auth.py`` — the admin token.
- ``openapi.yaml`` — the spec-first API document; ``openapi.py`` checks request bodies with it.
- ``store.py`` + ``migrations/`` — SQLite; ``groups.py``, ``inputs.py``, ``enrolment.py``,
  ``agents.py``, ``actions.py`` — the tables' rules; ``sweeps.py`` — expiry and offline marks;
  ``tokens.py`` — token minting and hashing; ``configs.py`` — the render cache over
  ``render.py`` (Vector YAML).
- ``errors.py`` / ``http.py`` — error envelopes, body limits, bearer parsing.
"""
