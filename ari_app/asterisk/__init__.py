"""The local Asterisk 22: its root file system, its configuration and its process."""
