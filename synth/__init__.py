"""Synth Studio core: generate synthetic text, embed, map and measure it. Never imports streamlit."""

__version__ = "0.1.0"
