"""immunopet.io"""
