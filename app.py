"""AutoML Studio entry point: page config and navigation, nothing else."""
import streamlit as st

from studio.login import require_login
from studio.nav import pages

st.set_page_config(page_title="AutoML Studio", page_icon="🧪", layout="wide")
require_login()  # with AUTOML_STUDIO_PASSWORD set: nothing below runs before the password is given
st.navigation(pages(), position="sidebar").run()
