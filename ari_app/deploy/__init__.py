"""Going live: the server's service files, its install and uninstall, backups."""
