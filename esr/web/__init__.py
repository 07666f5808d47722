"""The web application: employee record pages, imports, tailoring and user management, and a JSON API.

`esr.web.app.create_app` builds it; `esr web` serves it (esr/web/cli.py); docs/web.md describes it. Nothing is
imported here, so that the `esr` command stays quick to start.
"""
