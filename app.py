"""Synth Studio: a multipage Streamlit dashboard over the ``synth`` core package."""

import streamlit as st

from pages.common import startup_ui

st.set_page_config(page_title="Synth Studio", page_icon=":material/science:", layout="wide")

navigation = st.navigation([
    st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:", default=True, url_path="explore"),
    st.Page("pages/generate.py", title="Generate", icon=":material/auto_awesome:", url_path="generate"),
    st.Page("pages/metrics.py", title="Metrics", icon=":material/monitoring:", url_path="metrics"),
])
startup_ui()
navigation.run()
