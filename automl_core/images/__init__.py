"""Image classification: reading labelled image sets, featurizing images (pretrained CNN, raw pixels),
and the run that hands the feature matrix to the tabular search.
"""
