"""Transaction demarcation: scopes, propagation and the boundary logic behind @transactional."""
