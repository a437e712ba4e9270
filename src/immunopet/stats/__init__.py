"""immunopet.stats"""
