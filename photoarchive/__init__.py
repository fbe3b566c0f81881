"""photoarchive: digitize archives of old photographs (dedup, stamp, enhance, matte, restore, triage)."""

__version__ = "0.2.0"
SOFTWARE = f"photoarchive {__version__}"
