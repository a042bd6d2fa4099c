"""The live training page: a local HTTP server (standard library only) and its static files (no CDN)."""
