"""fifa.annotator"""
