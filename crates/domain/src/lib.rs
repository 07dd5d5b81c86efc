//! tryggdel-domain
