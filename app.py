"""AutoML Studio entry point: page config and navigation, nothing else."""
import streamlit as st

from studio.nav import pages

st.set_page_config(page_title="AutoML Studio", page_icon="🧪", layout="wide")
st.navigation(pages(), position="sidebar").run()
