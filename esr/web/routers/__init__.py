"""One module per screen; each has a `pages` router (HTML) and an `api` router (JSON under /api)."""
