"""immunopet.synthetic"""
