"""Fetching and parsing sources into `Item`s."""
