"""Settings of the web application."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class WebSettings:
    database_url: str
    #: a session ends after this long without a request ...
    session_idle: dt.timedelta = dt.timedelta(minutes=30)
    #: ... and in any case this long after login.
    session_lifetime: dt.timedelta = dt.timedelta(hours=8)
    #: send cookies with the Secure flag (and HSTS); on when served over HTTPS, directly or behind a proxy.
    secure_cookies: bool = False
    #: failed logins in a row before the account is locked for `lockout`.
    max_failed_logins: int = 5
    lockout: dt.timedelta = dt.timedelta(minutes=15)
    pool_min_size: int = 1
    pool_max_size: int = 10
    page_size: int = 25
    #: times on pages (and in the API's ISO timestamps) are in this zone
    timezone: str = "Europe/London"

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and Path=/.
        return "__Host-esr_session" if self.secure_cookies else "esr_session"

    @property
    def login_csrf_cookie(self) -> str:
        return "__Host-esr_login_csrf" if self.secure_cookies else "esr_login_csrf"
