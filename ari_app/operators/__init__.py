"""The operators' desk: app_queue over AMI, the live board, operators first."""
