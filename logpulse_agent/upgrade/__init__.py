"""The ``upgrade_agent`` action.

handler.py (its life cycle), upgrader.py (launch and observe the installer), verdict.py (what
the observations mean, pure), record.py (target version, in-flight record), download.py,
launcher.py (detached or systemd), installer_log.py (upgrade.log), probation.py (root's view
of an upgrade probation, the agent's promotion).
"""
