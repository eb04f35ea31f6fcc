"""Synth Studio: a multipage Streamlit dashboard over the ``synth`` core package."""

from pages.shell import app_run, configure_page, navigation, startup_ui

configure_page()
page = navigation()
with app_run(page):
    startup_ui()
    page.run()
