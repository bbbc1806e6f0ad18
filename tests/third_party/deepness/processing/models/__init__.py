""" Module including classes implemetations for the deep learning inference and related functions
"""