"""immunopet.report"""
