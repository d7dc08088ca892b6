"""The web console at `/`: server-rendered pages for finance people over the same services
the API uses (docs/console.md)."""
