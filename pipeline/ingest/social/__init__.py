"""Social-platform connectors (Mastodon, Bluesky, Reddit, Telegram, X), one per `kind`.

`base.registry()` maps a kind to its connector; `runner.collect` reads many sources at once.
"""
