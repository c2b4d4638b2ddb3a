"""The HTTP side: the console's API, its login, the live stream, the AML doors, TLS."""
