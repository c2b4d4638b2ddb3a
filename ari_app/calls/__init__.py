"""A 112 call in the app: its controller (the IVR and agency dialling), where the caller is, the SIP capture, operators' callbacks."""
