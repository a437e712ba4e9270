"""immunopet.voi"""
