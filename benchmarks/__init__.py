"""fifa.benchmarks"""
