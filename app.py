"""Synth Studio: a multipage Streamlit dashboard over the ``synth`` core package."""

from pages.shell import app_run, configure_page, navigation

configure_page()
page = navigation()
with app_run(page):
    page.run()  # the page starts up first (pages.shell.require_app): the database, demo data, jobs
