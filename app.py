"""AutoML Studio entry point: page config and navigation, nothing else."""
import streamlit as st

st.set_page_config(page_title="AutoML Studio", page_icon="🧪", layout="wide")
st.navigation([st.Page("pages/home.py", title="Home", default=True)]).run()
