//! The gRPC contracts of vaxbook: the code generated from `proto/vaxbook/**.proto`, and the
//! encoded descriptor set that every service registers with gRPC server reflection.

#![allow(clippy::all, missing_docs)]

/// Encoded `FileDescriptorSet` of every vaxbook contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/vaxbook_descriptor.bin"));

pub mod auth {
    pub mod v1 {
        tonic::include_proto!("vaxbook.auth.v1");
    }
}

pub mod session {
    pub mod v1 {
        tonic::include_proto!("vaxbook.session.v1");
    }
}

pub mod scheduling {
    pub mod v1 {
        tonic::include_proto!("vaxbook.scheduling.v1");
    }
}

pub mod booking {
    pub mod v1 {
        tonic::include_proto!("vaxbook.booking.v1");
    }
}

pub mod keys {
    pub mod v1 {
        tonic::include_proto!("vaxbook.keys.v1");
    }
}

pub mod audit {
    pub mod v1 {
        tonic::include_proto!("vaxbook.audit.v1");
    }
}
