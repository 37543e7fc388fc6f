"""The ``upgrade_agent`` action: start the installer, reconcile its outcome after a restart."""
