"""fifa.modeling"""
