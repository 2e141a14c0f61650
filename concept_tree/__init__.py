"""fifa.concept_tree"""
