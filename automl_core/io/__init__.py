"""Reading tables from files within limits: the CSV sniffer, the reader for every supported format,
and the size / memory limits applied before a file is read and in trial workers.
"""
