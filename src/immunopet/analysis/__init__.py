"""immunopet.analysis"""
