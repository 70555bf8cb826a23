"""Acquisition: raw sources pulled from the network into SpeakLeash archives (``gniazdo data pull``).

    from gniazdo.acquire import pull_wolnelektury, pull_hf, pull_speakleash, Downloader
    pull_wolnelektury("data/raw/wolnelektury", limit=10)

Every pull goes through one resumable, retrying, size-checking :class:`Downloader`
(:mod:`gniazdo.acquire.download`); network failures are one-line ``UserError``s naming the URL.
"""

from __future__ import annotations

from gniazdo.acquire.download import Downloader, PullResult, download
from gniazdo.acquire.hf import pull_hf
from gniazdo.acquire.speakleash import pull_speakleash
from gniazdo.acquire.wolnelektury import DEFAULT_API_URL, clean_text, pull_wolnelektury

__all__ = ["Downloader", "PullResult", "download", "pull_hf", "pull_speakleash", "pull_wolnelektury",
           "clean_text", "DEFAULT_API_URL"]
