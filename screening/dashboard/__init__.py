"""The Streamlit dashboard: page scripts in ``pages/`` and the small UI helpers they share.

Pages only draw: every number and every write goes through ``screening.*``, the same
code the CLI runs.
"""
