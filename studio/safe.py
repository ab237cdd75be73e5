"""User strings on the page and on disk: shown as text, never as markup; file names without paths.

Streamlit renders ``st.markdown``, ``st.caption``, ``st.error`` and friends as Markdown (raw HTML is not
rendered without ``unsafe_allow_html``, which the studio never passes). Markdown alone is enough to
mislead, though: a column named ``![x](http://host/track.png)`` would load a remote image, ``[ok](url)``
becomes a link, ``$x$`` LaTeX and ``:red[...]`` colour. Every string that comes from a user's file,
file name or form -- column names, class labels, dataset and experiment names, and the error messages
that quote them -- goes through :func:`md` first.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any

import streamlit as st

# Any ASCII punctuation may be backslash-escaped in CommonMark. Escaped: what starts markup anywhere
# (emphasis, code, links/images, HTML, tables, strikethrough, LaTeX, entities), a colon that could
# open an emoji or :material/icon: code, and what starts a block at the beginning (heading, list).
# Plain punctuation (quotes, brackets' round cousins, "Fix: ") stays readable.
# An underscore inside a word ("branch_code") is never emphasis in CommonMark, so it stays as typed.
# GitHub-flavoured autolinks are broken up too: "http://", "www." and e-mail addresses would become links
# (and an escape inside a link shows as a backslash), so the colon before "//", the dot after "www" and
# "@" are escaped, and -- because Streamlit's renderer finds autolinks in the text after unescaping --
# an invisible word joiner (U+2060) goes before each of them.
_MARKDOWN = re.compile(r"([\\`*{}\[\]<>|~$&!@]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|:(?=[\w/])|(?<=[wW]{3})\."
                       r"|^[#+\-=]|^\d+(?=[.)]))")
# C0 controls, DEL, and the Unicode line breaks (NEL, line/paragraph separators) a browser wraps at.
_AUTOLINK = re.compile(r"(?i)(?<=https)(?=\\:)|(?<=http)(?=\\:)|(?<=ftp)(?=\\:)|(?<=www)(?=\\\.)|(?=\\@)")
_JOINER = "\u2060"
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


def md(text: Any) -> str:
    """``text`` escaped so Markdown shows it literally, on one line (newlines and tabs as spaces)."""
    return _AUTOLINK.sub(_JOINER, _MARKDOWN.sub(_escape, _CONTROL.sub(" ", str(text))))


def _escape(match: re.Match) -> str:
    found = match.group(1)
    return found + "\\" if found[0].isdigit() else "\\" + found  # "1. x" -> "1\. x"


def show_error(exc: BaseException | str) -> None:
    """An input problem on the page: the one-line message, as text."""
    st.error(md(str(exc)), icon=":material/error:")


def safe_filename(name: str, *, default: str = "upload", limit: int = 120) -> str:
    """A browser-supplied file name made harmless: no folders (``../``, absolute paths, ``C:\\``), no
    control characters or NUL, at most ``limit`` characters with the extension kept.

    The studio never writes a file under this name (uploads are stored as ``datasets/<id>.parquet``);
    it is what the page shows, what the dataset is called, and what downloads are named after.
    """
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", str(name)))[-1]
    base = _CONTROL.sub("", base).strip().strip(".") or default
    if len(base) > limit:
        stem, dot, ext = base.rpartition(".")
        ext = ext if dot and len(ext) <= 10 else ""
        base = (stem if dot else base)[: limit - len(ext) - 2] + "…" + ("." + ext if ext else "")
    return base
