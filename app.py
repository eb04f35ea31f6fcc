"""Synth Studio: a multipage Streamlit dashboard over the ``synth`` core package."""

import streamlit as st

from pages.common import app_pages, app_run, configure_page, startup_ui

configure_page()
navigation = st.navigation(app_pages())
with app_run():
    startup_ui()
    navigation.run()
