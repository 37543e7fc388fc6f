"""The Vector config the control plane serves: poll, validate, apply, watch, roll back."""
