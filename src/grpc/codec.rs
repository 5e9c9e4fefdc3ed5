//! The gRPC codec of Warden's services: prost, except that a request whose bytes do not decode as
//! its message is INVALID_ARGUMENT (tonic-prost answers INTERNAL, which tells a gateway "server bug"
//! rather than "bad request"). The generated code names this codec (`build.rs`, `codec_path`).
use super::status;
use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// [`ProstCodec`] with decode failures answered INVALID_ARGUMENT.
#[derive(Debug)]
pub struct WardenCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for WardenCodec<T, U> {
    fn default() -> Self {
        WardenCodec(ProstCodec::default())
    }
}

impl<T, U> Codec for WardenCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = WardenDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        WardenDecoder(self.0.decoder())
    }
}

/// [`ProstDecoder`], whose only failure (bytes that are not the message) becomes INVALID_ARGUMENT.
#[derive(Debug)]
pub struct WardenDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for WardenDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|e| status::undecodable(e.message()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
