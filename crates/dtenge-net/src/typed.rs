//! Typed calls between services: a request type names the answer it gets,
//! once, for the service and its callers alike, and every body is decoded
//! bounded and canonical (one encoding per value, at most
//! [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES)).

use borsh::{BorshDeserialize, BorshSerialize};
use dtenge_types::ParticipantId;

use crate::{Bus, HandlerError, MAX_BODY_BYTES, NetError};

/// A request to another service, paired with the answer it gets.
pub trait Request: BorshSerialize + BorshDeserialize + Send + Sync {
    /// What the service answers.
    type Answer: BorshSerialize + BorshDeserialize + Send;
    /// What the service is, for errors ("node", "oracle", "directory", "notary").
    const SERVICE: &'static str;
}

/// Decodes a body that came from another service: at most
/// [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES), canonical, or an error naming why.
pub fn decode_body<T: BorshDeserialize + BorshSerialize>(bytes: &[u8]) -> Result<T, NetError> {
    dtenge_types::encoding::decode(bytes, MAX_BODY_BYTES).map_err(|e| NetError::Decode(e.to_string()))
}

/// Decodes a request a service received: a malformed one is the caller's
/// bad request, named with the service it was meant for.
pub fn decode_request<R: Request>(body: &[u8]) -> Result<R, HandlerError> {
    dtenge_types::encoding::decode(body, MAX_BODY_BYTES)
        .map_err(|e| HandlerError::BadRequest(format!("not a request to the {}: {e}", R::SERVICE)))
}

/// Typed calls over any transport.
#[async_trait::async_trait]
pub trait BusExt: Bus {
    /// Sends `request` to `to` and decodes its answer.
    async fn request<R: Request>(&self, to: &ParticipantId, request: &R) -> Result<R::Answer, NetError> {
        let answer = self.call(to, dtenge_types::encoding::encode(request)).await?;
        decode_body(&answer)
    }
}

impl<B: Bus + ?Sized> BusExt for B {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, BorshSerialize, BorshDeserialize)]
    struct Ping(u32);

    impl Request for Ping {
        type Answer = u64;
        const SERVICE: &'static str = "test";
    }

    #[test]
    fn a_request_decodes_only_from_its_one_encoding_and_within_the_limit() {
        let good = dtenge_types::encoding::encode(&Ping(7));
        assert_eq!(decode_request::<Ping>(&good).ok(), Some(Ping(7)));
        let mut trailing = good.clone();
        trailing.push(0);
        let refused = decode_request::<Ping>(&trailing).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refused.starts_with("bad request: not a request to the test"), "{refused}");
        let huge = vec![0u8; MAX_BODY_BYTES + 1];
        assert!(matches!(decode_body::<u64>(&huge), Err(NetError::Decode(why)) if why.contains("exceeds the limit")));
    }
}
