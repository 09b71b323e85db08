"""The headless core of workbench. Nothing under this package may import textual or rich."""
