"""immunopet.study"""
