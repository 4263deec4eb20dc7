"""`trace batch`'s machinery: which programs (inputs), one program start to finish (worker),
and running them as Ray tasks (runner). Ray is imported only when a batch runs."""
