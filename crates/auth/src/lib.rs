//! tryggdel-auth
