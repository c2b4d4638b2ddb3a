"""ARI's REST requests, one module per resource over one transport (`transport.AriRest`)."""
