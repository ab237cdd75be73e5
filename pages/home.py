import streamlit as st

st.title("AutoML Studio")
st.write("Upload a table, pick what to predict, and get a validated model. The studio is being built.")
