package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	vault "github.com/hashicorp/vault/api"
)

// Reader reads the key a consumer should use now. Errors never contain the
// key.
type Reader interface {
	Read(ctx context.Context) (string, error)
	// String names the source for reports, e.g. "file:/etc/keys/api.json".
	String() string
}

// File reads the file sink's JSON document at path and returns its
// current.value.
func File(path string) Reader { return fileReader(path) }

type fileReader string

func (f fileReader) String() string { return "file:" + string(f) }

func (f fileReader) Read(context.Context) (string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return "", err
	}
	var doc struct {
		Current *struct {
			Value string `json:"value"`
		} `json:"current"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", fmt.Errorf("%s: not a JSON document", f)
	}
	if doc.Current == nil || doc.Current.Value == "" {
		return "", fmt.Errorf("%s: no current value", f)
	}
	return doc.Current.Value, nil
}

// Vault reads field of the latest version of the KV v2 secret at path under
// mount, with HashiCorp's own client.
func Vault(client *vault.Client, mount, path, field string) Reader {
	return &vaultReader{kv: client.KVv2(mount), name: mount + "/" + path, path: path, field: field}
}

type vaultReader struct {
	kv                *vault.KVv2
	name, path, field string
}

func (v *vaultReader) String() string { return "vault:" + v.name + "#" + v.field }

func (v *vaultReader) Read(ctx context.Context) (string, error) {
	s, err := v.kv.Get(ctx, v.path)
	if err != nil {
		return "", fmt.Errorf("vault %s: %w", v.name, err)
	}
	val, ok := s.Data[v.field].(string)
	if !ok || val == "" {
		return "", fmt.Errorf("vault %s: no field %s", v.name, v.field)
	}
	return val, nil
}

// NewVaultClient returns a Vault client for addr authenticated with token.
func NewVaultClient(addr, token string) (*vault.Client, error) {
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	return c, nil
}

// SecretsManager reads the AWSCURRENT version of secretID with the AWS SDK
// (always by stage: moto, unlike AWS, keeps answering the old version to a
// read without one). With field set, the secret is a JSON object and the
// key is that field; otherwise the key is the whole SecretString.
func SecretsManager(client *sm.Client, secretID, field string) Reader {
	return &smReader{client: client, id: secretID, field: field}
}

type smReader struct {
	client    *sm.Client
	id, field string
}

func (s *smReader) String() string {
	if s.field != "" {
		return "awssm:" + s.id + "#" + s.field
	}
	return "awssm:" + s.id
}

func (s *smReader) Read(ctx context.Context) (string, error) {
	out, err := s.client.GetSecretValue(ctx, &sm.GetSecretValueInput{SecretId: aws.String(s.id), VersionStage: aws.String("AWSCURRENT")})
	if err != nil {
		return "", fmt.Errorf("awssm %s: %w", s.id, err)
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("awssm %s: no SecretString", s.id)
	}
	if s.field == "" {
		return *out.SecretString, nil
	}
	var obj map[string]any
	if json.Unmarshal([]byte(*out.SecretString), &obj) != nil {
		return "", fmt.Errorf("awssm %s: not a JSON object", s.id)
	}
	v, ok := obj[s.field].(string)
	if !ok {
		return "", fmt.Errorf("awssm %s: no field %s", s.id, s.field)
	}
	return v, nil
}

// NewSecretsManagerClient returns a Secrets Manager client for region with
// fixed credentials, sending to endpoint when it is set (moto).
func NewSecretsManagerClient(endpoint, region, accessKeyID, secretAccessKey string) *sm.Client {
	return sm.New(sm.Options{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, ""),
		BaseEndpoint: func() *string {
			if endpoint == "" {
				return nil
			}
			return aws.String(endpoint)
		}(),
	})
}

// Static always returns key: a consumer configured by hand, or one whose
// copy of the key is broken. name appears in reports instead of the key.
func Static(name, key string) Reader { return staticReader{name: name, key: key} }

type staticReader struct{ name, key string }

func (s staticReader) String() string                       { return "static:" + s.name }
func (s staticReader) Read(context.Context) (string, error) { return s.key, nil }
