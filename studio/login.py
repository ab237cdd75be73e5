"""A password in front of every page, for a studio shared on a network.

Off unless ``AUTOML_STUDIO_PASSWORD`` is set (the studio binds to 127.0.0.1 by default, where only this
machine's users reach it). When set, :func:`require_login` runs before the navigation (app.py) and
again at the top of every page (``nav.step_header``, which a deep link reaches even before app.py's
navigation is in place), and stops the script until the session has given the password: no page,
table or download is rendered before. The comparison is constant-time (``hmac.compare_digest``).
"""
from __future__ import annotations

import hashlib
import hmac
import os

import streamlit as st

PASSWORD_ENV = "AUTOML_STUDIO_PASSWORD"
_SESSION_KEY = "_studio_login"


def _ticket(password: str) -> str:
    """What the session keeps once signed in: a digest of the password it matched, so changing the
    password (and restarting) signs every session out, and the password itself is never kept."""
    return hashlib.sha256(b"automl-studio-login:" + password.encode()).hexdigest()


def require_login() -> None:
    """Return when no password is configured or this session has signed in; otherwise show the sign-in
    form and stop the script."""
    expected = os.environ.get(PASSWORD_ENV, "")
    if not expected or st.session_state.get(_SESSION_KEY) == _ticket(expected):
        return
    from streamlit.runtime.pages_manager import PagesManager

    # Until some session has run st.navigation, Streamlit lists the pages/ files in the sidebar: leave
    # that mode (as nav._ensure_app_navigation does) so the sign-in form shows no page names either.
    # Only on a session's first run, as there: a rerun later would swallow the click that caused it.
    first_run = not st.session_state.get("_login_navigation")
    st.session_state["_login_navigation"] = True
    if first_run and PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
    # The sign-in form as the only page, hidden: the sidebar lists no page of the studio either.
    st.navigation([st.Page(_sign_in, title="Sign in", url_path="sign-in", default=True)], position="hidden").run()
    st.stop()


def _sign_in() -> None:
    # A plain function (not a closure): Streamlit keys the page, and so its widgets' state, by it.
    expected = os.environ.get(PASSWORD_ENV, "")
    st.title("AutoML Studio")
    st.caption("This studio is shared: sign in with the password its administrator set.")
    with st.form("login_form"):
        given = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        if hmac.compare_digest(given.encode(), expected.encode()):
            st.session_state[_SESSION_KEY] = _ticket(expected)
            st.rerun()
        st.error("Wrong password. Fix: type it again, or ask whoever runs this studio "
                 f"(it is the {PASSWORD_ENV} setting of the server).", icon=":material/lock:")
