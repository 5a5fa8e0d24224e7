"""Report: logged names, results, best values, figures, errors and notices."""
